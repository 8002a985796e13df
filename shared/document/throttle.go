package document

import (
	"time"

	"github.com/google/uuid"
)

// Throttle paces a user's requests in one process. It suits requests whose
// cost is a call to the object store: a little slack across API replicas
// harms nobody, and counting them in PostgreSQL would cost a write each.
type Throttle interface {
	// Take counts one request of user at now and reports whether it may
	// go ahead; when it may not, wait is how long until one may.
	Take(user uuid.UUID, now time.Time) (wait time.Duration, ok bool)
}

// paceStorage takes one request of user from the StorageThrottle, before a
// call to the object store made on the user's behalf.
func (s *Service) paceStorage(user uuid.UUID) error {
	if s.cfg.StorageThrottle == nil {
		return nil
	}
	wait, ok := s.cfg.StorageThrottle.Take(user, s.cfg.Now())
	if ok {
		return nil
	}
	return &RateLimitedError{
		Message:    "too many confirm and part requests: slow down",
		RetryAfter: max(time.Second, wait),
	}
}
