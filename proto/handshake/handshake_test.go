package handshake

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeReady(t *testing.T) {
	const good = `{"v":1,"type":"ready","subscriber":"s1","publisher":"000102030405060708090a0b0c0d0e0f","epoch":7,"nonce":"ffeeddccbbaa99887766554433221100"}`
	tests := []struct {
		name, in, code string
	}{
		{"valid", good, ""},
		{"not json", `hello`, CodeMalformed},
		{"trailing", good + ` {}`, CodeMalformed},
		{"version", strings.Replace(good, `"v":1`, `"v":9`, 1), CodeVersion},
		{"type", strings.Replace(good, `"ready"`, `"ack"`, 1), CodeMalformed},
		{"empty subscriber", strings.Replace(good, `"s1"`, `""`, 1), CodeMalformed},
		{"control char in subscriber", strings.Replace(good, `"s1"`, `"s\u0001"`, 1), CodeMalformed},
		{"long subscriber", strings.Replace(good, `"s1"`, `"`+strings.Repeat("x", 129)+`"`, 1), CodeMalformed},
		{"bad publisher", strings.Replace(good, `000102030405060708090a0b0c0d0e0f`, `xyz`, 1), CodeMalformed},
		{"short nonce", strings.Replace(good, `ffeeddccbbaa99887766554433221100`, `ff`, 1), CodeMalformed},
		{"too large", `{"v":1,"pad":"` + strings.Repeat("a", MaxHandshakeSize) + `"}`, CodeMalformed},
		{"forms", strings.Replace(good, `}`, `,"forms":["multi","future"]}`, 1), ""},
		{"too many forms", strings.Replace(good, `}`, `,"forms":[`+strings.Repeat(`"f",`, MaxForms)+`"f"]}`, 1), CodeMalformed},
		{"long form name", strings.Replace(good, `}`, `,"forms":["`+strings.Repeat("f", MaxFormName+1)+`"]}`, 1), CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeReady([]byte(tt.in))
			if tt.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var he *Error
			if !errors.As(err, &he) || he.Code != tt.code {
				t.Fatalf("got %v, want code %s", err, tt.code)
			}
		})
	}
}
