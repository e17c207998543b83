package coord

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// checkConnectTimeout ends the job as unreachable when no publisher has
// joined ConnectTimeout after the first tick.
func (s *Subscriber) checkConnectTimeout(now time.Time) {
	if s.connectSettled || s.cfg.ConnectTimeout <= 0 {
		return
	}
	if s.connectSince.IsZero() {
		s.connectSince = now
		return
	}
	if now.Sub(s.connectSince) < s.cfg.ConnectTimeout {
		return
	}
	s.connectSettled = true
	reason := fmt.Sprintf("no publisher joined within the connect timeout %v: %s", s.cfg.ConnectTimeout, s.unreachableDetail())
	s.lg.Warn("no publisher joined within the connect timeout", zap.Duration("connect_timeout", s.cfg.ConnectTimeout), zap.String("detail", s.unreachableDetail()))
	st := s.Stats()
	s.job.fail(&JobError{Outcome: OutcomeUnreachable, Received: st.Received, Lost: st.Lost, LossEvents: st.LossEvents,
		UnknownTails: st.UnknownTails, Reason: reason})
}

// unreachableDetail says, for the reason of an unreachable outcome, how
// far each publisher got: never connected, or connected and never
// answered the handshake.
func (s *Subscriber) unreachableDetail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.links) == 0 {
		if s.cluster != nil {
			return "no publisher with matching topics was discovered"
		}
		return "no publisher was added"
	}
	var parts []string
	for _, ep := range slices.Sorted(maps.Keys(s.links)) {
		l := s.links[ep]
		switch {
		case l.wasUp:
			parts = append(parts, fmt.Sprintf("%s connected, but no handshake on %s completed", ep, l.eps.Sync))
		default:
			parts = append(parts, fmt.Sprintf("%s never connected", ep))
		}
	}
	return strings.Join(parts, "; ")
}
