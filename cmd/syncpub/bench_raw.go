package main

import (
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/spf13/cobra"
	"github.com/syncmq/syncmq/cmd/internal/cli"
)

// The raw go-zeromq baseline for `syncpub bench`: the zguide's syncpub and
// syncsub ported line by line to zmq4 sockets, including the subscriber's
// one-second sleep that the zguide uses against the slow-joiner problem.
// One addition keeps the comparison fair: the publisher waits for every
// subscriber to confirm END before exiting, because zmq4's Close drops
// whatever is still queued.

func newRawPubCommand() *cobra.Command {
	var bind, syncBind, payload string
	var expect, count int
	cmd := &cobra.Command{
		Use:    "bench-raw-pub",
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pub := zmq4.NewPub(ctx)
			defer pub.Close()
			if err := pub.Listen(bind); err != nil {
				return err
			}
			rep := zmq4.NewRep(ctx)
			defer rep.Close()
			if err := rep.Listen(syncBind); err != nil {
				return err
			}
			for i := 0; i < expect; i++ {
				if _, err := rep.Recv(); err != nil {
					return err
				}
				if err := rep.Send(zmq4.NewMsgString("")); err != nil {
					return err
				}
			}
			for i := 0; i < count; i++ {
				if err := pub.Send(zmq4.NewMsgString(payload)); err != nil {
					return err
				}
			}
			if err := pub.Send(zmq4.NewMsgString("END")); err != nil {
				return err
			}
			for i := 0; i < expect; i++ {
				if _, err := rep.Recv(); err != nil {
					return err
				}
				if err := rep.Send(zmq4.NewMsgString("")); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&bind, "bind", "tcp://*:5561", "")
	cmd.Flags().StringVar(&syncBind, "sync-bind", "tcp://*:5562", "")
	cmd.Flags().StringVar(&payload, "payload", "Rhubarb", "")
	cmd.Flags().IntVar(&expect, "expect", 10, "")
	cmd.Flags().IntVar(&count, "count", 1_000_000, "")
	return cmd
}

func newRawSubCommand() *cobra.Command {
	var connect, sync string
	cmd := &cobra.Command{
		Use:    "bench-raw-sub",
		Hidden: true,
		Args:   cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			sub := zmq4.NewSub(ctx, zmq4.WithDialerRetry(50*time.Millisecond), zmq4.WithDialerMaxRetries(-1))
			defer sub.Close()
			if err := sub.SetOption(zmq4.OptionSubscribe, ""); err != nil {
				return err
			}
			if err := sub.Dial(connect); err != nil {
				return err
			}
			time.Sleep(time.Second) // the zguide's syncsub does this; it is the baseline
			req := zmq4.NewReq(ctx, zmq4.WithDialerRetry(50*time.Millisecond), zmq4.WithDialerMaxRetries(-1))
			defer req.Close()
			if err := req.Dial(sync); err != nil {
				return err
			}
			if err := req.Send(zmq4.NewMsgString("")); err != nil {
				return err
			}
			if _, err := req.Recv(); err != nil {
				return err
			}
			n := 0
			for {
				m, err := sub.Recv()
				if err != nil {
					return err
				}
				if string(m.Frames[0]) == "END" {
					break
				}
				n++
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Received %d updates\n", n)
			// Tell the publisher we have END. Its reply may be lost to its
			// exit (zmq4 does not flush on Close); the count is what matters.
			if err := req.Send(zmq4.NewMsgString("done")); err == nil {
				_, _ = req.Recv()
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&connect, "connect", "tcp://localhost:5561", "")
	cmd.Flags().StringVar(&sync, "sync", "tcp://localhost:5562", "")
	return cmd
}
