// Package document owns DocuVault's domain: the Document and its status
// machine, per-user quotas, document events, the error codes every adapter
// translates into, and the use cases (RequestUpload, Confirm, Delete, …).
//
// It is written against the small Store and Objects interfaces declared
// here and imports no database, broker or object-store driver.
package document
