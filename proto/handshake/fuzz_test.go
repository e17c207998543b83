package handshake

import (
	"encoding/json"
	"errors"
	"testing"
)

func isBye(b []byte) bool {
	var head struct {
		Type string `json:"type"`
	}
	return json.Unmarshal(b, &head) == nil && head.Type == TypeBye
}

// FuzzDecodeReady feeds arbitrary bytes to the READY decoder: it must never
// panic, every error must be a Error with a reply code, and an
// accepted request must survive a JSON round trip.
func FuzzDecodeReady(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"ready","subscriber":"s1","publisher":"000102030405060708090a0b0c0d0e0f","epoch":7,"nonce":"ffeeddccbbaa99887766554433221100","topics":["a","b"]}`))
	f.Add([]byte(`{"v":1,"type":"ready","subscriber":"s1","publisher":"000102030405060708090a0b0c0d0e0f","epoch":7,"nonce":"ffeeddccbbaa99887766554433221100","forms":["multi"]}`))
	f.Add([]byte(`{"v":2,"type":"ready"}`))
	f.Add([]byte(`{"type":"ready"}`))
	f.Add([]byte(`{"v":"1","type":"bye","nonce":"FFEEDDCCBBAA99887766554433221100"}`))
	f.Add([]byte(`{"v":1,"type":"ack"}`))
	f.Add([]byte(`{"v":1,"type":"ready","subscriber":"","publisher":"zz","nonce":"00"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeReady(b)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Code == "" || !errors.Is(err, ErrFailed) {
				t.Fatalf("error %v is not a coded Error", err)
			}
			return
		}
		again, err := DecodeReady(Encode(r))
		if err != nil {
			t.Fatalf("re-encoded request rejected: %v", err)
		}
		a, _ := json.Marshal(r)
		b2, _ := json.Marshal(again)
		if string(a) != string(b2) {
			t.Fatalf("round trip changed the request: %s != %s", a, b2)
		}
	})
}

// FuzzDecodeReply: the subscriber's side of the handshake must never panic
// on whatever a (possibly hostile) sync endpoint replies.
func FuzzDecodeReply(f *testing.F) {
	f.Add([]byte(`{"v":1,"type":"ack","publisher":"000102030405060708090a0b0c0d0e0f","epoch":7,"joined":1,"expect":2,"quorum":false,"topics":[{"topic":"a","seq":5}]}`))
	f.Add([]byte(`{"v":1,"type":"ack","publisher":"000102030405060708090a0b0c0d0e0f","epoch":7,"joined":1,"expect":1,"quorum":true,"topics":[],"forms":["multi"]}`))
	f.Add([]byte(`{"v":1,"type":"error","code":"bad_nonce","message":"x"}`))
	f.Add([]byte(`{"v":1,"type":"ack","topics":7}`))
	f.Add([]byte(`nope`))
	f.Add([]byte(`{"v":1,"type":"bye"}`))
	f.Add([]byte(`{"v":2,"type":"error","code":"version","versions":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ack, err := DecodeReply(b)
		if err == nil && ack == nil && !isBye(b) {
			t.Fatal("nil ack without an error for a reply that is not a bye")
		}
	})
}
