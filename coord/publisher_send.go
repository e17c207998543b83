package coord

import (
	"context"

	"github.com/syncmq/syncmq/internal/wire"
)

// applyClasses moves the connections whose form the core changed into
// their socket class. run calls it between a take and sending what the
// take returned, so a connection gets every batch in exactly one form.
func (p *Publisher) applyClasses() {
	for _, ch := range p.classes {
		class := classData
		if ch.multi {
			class = classMulti
		}
		p.setLiveClass(wire.ConnID(ch.conn), class)
	}
	clear(p.classes)
	p.classes = p.classes[:0]
}

// sendBatch hands a finished batch to the socket. A batch of one topic is
// a DATA message for every connection. A MULTI goes to the connections on
// the MULTI form and, when connections on the DATA form take data, as one
// DATA message per run to those: each connection sees the same records
// in the same order, in the one form it reads.
//
// m must not be touched after the MULTI is handed over: the last writer
// to finish returns it to the pool.
func (p *Publisher) sendBatch(ctx context.Context, m *outMsg) error {
	if !m.multi() {
		return p.pub.Send(ctx, &m.Msg)
	}
	p.multiBatches.Add(1)
	if !m.toData {
		return p.pub.Send(ctx, &m.Msg)
	}
	var first error
	m.eachRun(func(r *outRun) {
		d := p.newBatch()
		d.setData(r)
		if err := p.pub.Send(ctx, &d.Msg); err != nil && first == nil {
			first = err
		}
	})
	if err := p.pub.Send(ctx, &m.Msg); err != nil && first == nil {
		first = err
	}
	return first
}
