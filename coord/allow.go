package coord

// allowList is the set of identities a publisher with TLS lets subscribe,
// count and fetch (PublisherConfig.Allow). A nil list allows every
// identity. It never changes after it is made, so it is read without a
// lock.
type allowList map[string]struct{}

func newAllowList(ids []string) allowList {
	if len(ids) == 0 {
		return nil
	}
	a := make(allowList, len(ids))
	for _, id := range ids {
		a[id] = struct{}{}
	}
	return a
}

// allows reports whether identity is on the list, or the list is nil.
func (a allowList) allows(identity string) bool {
	if a == nil {
		return true
	}
	_, ok := a[identity]
	return ok
}
