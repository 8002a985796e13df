package postgres

// QueuedCreates is how many creates wait in s for a batch to take them.
func QueuedCreates(s *Store) int {
	s.creates.mu.Lock()
	defer s.creates.mu.Unlock()
	return len(s.creates.queue)
}
