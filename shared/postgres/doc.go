// Package postgres implements document.Store on PostgreSQL with pgx, and
// owns the schema: versioned SQL migrations embedded in the binary.
package postgres
