package membership

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	cases := []struct {
		in      string
		wantLen int
		errText string
	}{
		{"cg8StVXbQJ0gPvMd9o7yrg==", 16, ""},
		{"  cg8StVXbQJ0gPvMd9o7yrg==\n", 16, ""},
		{"cg8StVXbQJ0gPvMd9o7yrg", 16, ""}, // unpadded
		{"HvY8ubRZMgafUOWvrOadwOckVa1wN3QWAo46FVKbVN8=", 32, ""},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 24, ""},
		{"", 0, "empty"},
		{"not base64!", 0, "base64"},
		{"AAAA", 0, "3 bytes"},
		{"AAAAAAAAAAAAAAAAAAAAAAAAAAA=", 0, "20 bytes"},
	}
	for _, tc := range cases {
		key, err := ParseKey(tc.in)
		if tc.errText == "" {
			if err != nil || len(key) != tc.wantLen {
				t.Errorf("ParseKey(%q) = %d bytes, %v", tc.in, len(key), err)
			}
			continue
		}
		if !errors.Is(err, ErrBadKey) || !strings.Contains(err.Error(), tc.errText) {
			t.Errorf("ParseKey(%q) = %v, want ErrBadKey mentioning %q", tc.in, err, tc.errText)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	s, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(s)
	if err != nil || len(key) != 32 {
		t.Fatalf("ParseKey(GenerateKey()) = %d bytes, %v", len(key), err)
	}
	if s2, _ := GenerateKey(); s2 == s {
		t.Error("GenerateKey repeated itself")
	}
}
