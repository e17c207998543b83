package envelope

import "strings"

// MatchesAny reports whether topic starts with one of prefixes, ZeroMQ's
// subscription rule. An empty list means every topic.
func MatchesAny(prefixes []string, topic string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// PrefixesOverlap reports whether some topic can start with a prefix of
// a and with a prefix of b: one prefix extends the other, or either list
// is empty (every topic). A publisher announcing a and a subscriber
// subscribed to b overlap exactly when the subscriber may receive
// something the publisher publishes: publisher "prices." and subscriber
// "prices.eur" overlap, and so do publisher "prices.eur" and subscriber
// "prices.".
func PrefixesOverlap(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, x := range a {
		for _, y := range b {
			if strings.HasPrefix(x, y) || strings.HasPrefix(y, x) {
				return true
			}
		}
	}
	return false
}
