package coord

// PubWireStats counts the connections of a publisher's data endpoint.
// Counters only grow; Peers, QueuedBytes, SubscriptionBytes and Pending
// are gauges.
type PubWireStats struct {
	// Peers is the number of connected subscribers' data connections.
	Peers int
	// Sent counts messages addressed to subscribers (queued, or refused
	// for MaxQueueBytes), summed over subscribers.
	Sent uint64
	// SlowConsumers counts subscribers disconnected as slow consumers.
	SlowConsumers uint64
	// Dropped counts messages addressed to slow consumers that never
	// reached their kernel buffers.
	Dropped uint64
	// QueuedBytes is what the queues hold now, each message counted once.
	QueuedBytes int64
	// Waits counts sends that found every matching queue above
	// QueueBytes and waited.
	Waits uint64
	// HandshakeFailed counts connections that failed or timed out in the
	// ZMTP handshake.
	HandshakeFailed uint64
	// TLSFailed counts connections to a tls:// endpoint whose TLS
	// handshake failed or timed out: no client certificate, one the CA
	// pool does not verify, or no TLS at all.
	TLSFailed uint64
	// RefusedIdentity counts connections closed because Allow refused
	// their identity.
	RefusedIdentity uint64
	// BadInput counts connections closed for a message over the limits.
	BadInput uint64
	// TooManySubscriptions counts connections closed for MaxSubscriptions
	// or MaxSubscriptionBytes.
	TooManySubscriptions uint64
	// SubscriptionBytes is what the subscriptions of all connections
	// take now, as SubscriptionBudget counts them.
	SubscriptionBytes int64
	// SubscriptionEvicted counts connections closed to keep the
	// subscriptions of all connections within SubscriptionBudget.
	SubscriptionEvicted uint64
	// Kicked counts connections closed for not joining within
	// JoinTimeout.
	Kicked uint64
	// Evicted counts connections closed to make room for a new one at
	// MaxConnsPerIP or MaxPeers.
	Evicted uint64
	// Pending is the number of handshakes in progress now.
	Pending int
	// EvictedPending counts handshakes closed to make room for a newer
	// connection: their address had MaxPendingPerIP handshakes in
	// progress, or the endpoint MaxPending and their address the most.
	EvictedPending uint64
	// Refused counts connections closed on arrival, the sum of the next two.
	Refused uint64
	// RefusedPeers: MaxPeers subscribers were connected.
	RefusedPeers uint64
	// RefusedPerIP: the source address had MaxConnsPerIP connections.
	RefusedPerIP uint64
}

// EndpointStats counts the connections of a publisher's sync or recovery
// endpoint. Conns is a gauge; the rest only grow.
type EndpointStats struct {
	// Conns is the number of open connections.
	Conns int
	// Requests counts requests handled.
	Requests uint64
	// TooLarge counts requests refused for their size.
	TooLarge uint64
	// HandshakeFailed counts connections that failed or timed out in the
	// ZMTP handshake.
	HandshakeFailed uint64
	// TLSFailed counts connections to a tls:// endpoint whose TLS
	// handshake failed or timed out.
	TLSFailed uint64
	// BadInput counts connections closed for a request over the hard cap
	// or a REQ peer without its envelope.
	BadInput uint64
	// HandlerErrors counts connections closed because a request could not
	// be answered.
	HandlerErrors uint64
	// IdleClosed counts connections closed after a while without a
	// request.
	IdleClosed uint64
	// Evicted counts connections closed to make room for a new one at the
	// connection limits: each time the one idle the longest.
	Evicted uint64
	// Refused counts connections closed on arrival, the sum of the next
	// two: the cap was reached and every connection under it had a
	// request in flight.
	Refused uint64
	// RefusedConns: the endpoint's connection cap was reached.
	RefusedConns uint64
	// RefusedPerIP: the source address had as many connections as one
	// address may.
	RefusedPerIP uint64
}
