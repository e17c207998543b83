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
		{"version 2 of an unknown shape", `{"v":2,"type":"hello-v2"}`, CodeVersion},
		{"version 0", strings.Replace(good, `"v":1`, `"v":0`, 1), CodeVersion},
		{"missing v", strings.Replace(good, `"v":1,`, ``, 1), CodeMalformed},
		{"v a string", strings.Replace(good, `"v":1`, `"v":"1"`, 1), CodeVersion},
		{"v a fraction", strings.Replace(good, `"v":1`, `"v":9.9`, 1), CodeVersion},
		{"v a fraction, before bad fields", `{"v":1.5,"subscriber":7,"nonce":[]}`, CodeVersion},
		{"v an object", strings.Replace(good, `"v":1`, `"v":{"major":2}`, 1), CodeVersion},
		{"v null", strings.Replace(good, `"v":1`, `"v":null`, 1), CodeMalformed},
		{"v 1, a field of the wrong type", strings.Replace(good, `"subscriber":"s1"`, `"subscriber":7`, 1), CodeMalformed},
		{"v null", strings.Replace(good, `"v":1`, `"v":null`, 1), CodeMalformed},
		{"upper-case hex", strings.Replace(strings.Replace(good, `ffeeddccbbaa99887766554433221100`, `FFEEDDCCBBAA99887766554433221100`, 1), `0a0b0c0d0e0f`, `0A0B0C0D0E0F`, 1), ""},
		{"bye", strings.Replace(good, `"ready"`, `"bye"`, 1), ""},
		{"bye without nonce", strings.Replace(strings.Replace(good, `"ready"`, `"bye"`, 1), `,"nonce":"ffeeddccbbaa99887766554433221100"`, ``, 1), CodeMalformed},
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

func TestVersionErrorListsVersions(t *testing.T) {
	b := Encode(NewErrorReply(CodeVersion, "version 2"))
	if !strings.Contains(string(b), `"versions":[1]`) {
		t.Fatalf("version error %s does not list the versions", b)
	}
	if b := Encode(NewErrorReply(CodeBadNonce, "x")); strings.Contains(string(b), "versions") {
		t.Fatalf("%s lists versions", b)
	}
	// A version error from a publisher of another version is still read.
	_, err := DecodeReply([]byte(`{"v":2,"type":"error","code":"version","message":"m","versions":[2,3]}`))
	var e *ErrorReply
	if !errors.As(err, &e) || e.Code != CodeVersion || len(e.Versions) != 2 || e.Versions[0] != 2 {
		t.Fatalf("got %v", err)
	}
}

// TestAckWithMostTopicsFits: an ACK of a publisher with the most topics
// allowed, each of the longest kind and with a resume table, decodes.
func TestAckWithMostTopicsFits(t *testing.T) {
	topic := strings.Repeat(`"`, 255) // every byte escaped: the longest JSON form
	a := Ack{V: Version, Type: TypeAck, Publisher: "000102030405060708090a0b0c0d0e0f", Epoch: 1 << 52}
	for i := 0; i < MaxAckTopics; i++ {
		a.Topics = append(a.Topics, TopicSeq{Topic: topic, Seq: ^uint64(0)})
	}
	a.Resume = a.Topics
	b := Encode(a)
	if len(b) > MaxReplySize {
		t.Fatalf("ACK of %d bytes exceeds MaxReplySize %d", len(b), MaxReplySize)
	}
	got, err := DecodeReply(b)
	if err != nil || len(got.Topics) != MaxAckTopics || got.Topics[0].Topic != topic {
		t.Fatalf("decode: %v", err)
	}
	// 16,384 short topics (the default MaxTopics) were over the 1.0 limit of 64 KiB.
	small := Ack{V: Version, Type: TypeAck, Publisher: a.Publisher}
	for i := 0; i < 16_384; i++ {
		small.Topics = append(small.Topics, TopicSeq{Topic: "update-" + strings.Repeat("x", 8), Seq: 1})
	}
	if b := Encode(small); len(b) <= 64<<10 {
		t.Fatalf("expected the default topic limit to exceed 64 KiB, got %d bytes", len(b))
	} else if _, err := DecodeReply(b); err != nil {
		t.Fatal(err)
	}
}
