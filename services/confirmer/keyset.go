package confirmer

import "sync"

// keySet is a bounded set of strings that forgets the oldest first.
type keySet struct {
	mu    sync.Mutex
	keys  map[string]struct{}
	order []string // a ring of the keys, oldest at next
	next  int
}

func newKeySet(size int) *keySet {
	return &keySet{keys: make(map[string]struct{}, size), order: make([]string, size)}
}

func (s *keySet) has(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[key]
	return ok
}

func (s *keySet) add(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[key]; ok {
		return
	}
	if old := s.order[s.next]; old != "" {
		delete(s.keys, old)
	}
	s.order[s.next] = key
	s.keys[key] = struct{}{}
	s.next = (s.next + 1) % len(s.order)
}
