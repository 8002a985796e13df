package main

import (
	"context"
	"regexp"
	"slices"
	"strings"
)

// stmtStat is one statement's line of pg_stat_statements.
type stmtStat struct {
	query    string  // normalized, as pg_stat_statements keeps it
	toplevel bool    // sent by a client, not run inside a function or a trigger
	calls    float64 // executions
	rows     float64 // rows the executions returned or changed
	meanMS   float64 // mean execution time
}

// resetStatements empties pg_stat_statements.
func (s *stack) resetStatements(ctx context.Context) error {
	s.ownXacts.Add(1)
	_, err := s.h.Pool.Exec(ctx, `SELECT pg_stat_statements_reset()`)
	return err
}

// statements returns pg_stat_statements' lines for the documents database
// since the last reset, the harness's own left out: it connects as
// harnessRole, the services as DATABASE_URL's user.
func (s *stack) statements(ctx context.Context) ([]stmtStat, error) {
	s.ownXacts.Add(1)
	rows, err := s.h.Pool.Query(ctx, `SELECT query, toplevel, calls::float8, rows::float8, mean_exec_time FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND userid <> (SELECT oid FROM pg_roles WHERE rolname = current_user)
		ORDER BY calls DESC`)
	if err != nil {
		return nil, err
	}
	var out []stmtStat
	for rows.Next() {
		var st stmtStat
		if err := rows.Scan(&st.query, &st.toplevel, &st.calls, &st.rows, &st.meanMS); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// stmtRows is how many statements the report lists.
const stmtRows = 10

// writeStatements reports PostgreSQL's statements per uploaded file of
// DocuVault's runs at statementsAt: per statement, the median over the runs
// of its calls per file (0 in a run that did not run it) and of its mean
// execution time.
func (r *report) writeStatements(w writer) {
	var runs []tpRun
	for _, t := range r.tp {
		if t.size != statementsAt {
			continue
		}
		for _, x := range t.of(sysDocuVault) {
			if x.st.ops > 0 && x.stmts != nil {
				runs = append(runs, x)
			}
		}
	}
	if len(runs) == 0 {
		return
	}
	type line struct {
		query          string
		perFile, mean  float64
		perRun, meanMS []float64
	}
	byQuery := map[string]*line{}
	for i, x := range runs {
		for _, st := range x.stmts {
			key := stmtKey(st.query)
			l := byQuery[key]
			if l == nil {
				l = &line{query: st.query, perRun: make([]float64, len(runs))}
				byQuery[key] = l
			}
			l.perRun[i] += st.calls / float64(x.st.ops)
			l.meanMS = append(l.meanMS, st.meanMS)
		}
	}
	var lines []*line
	total := make([]float64, len(runs))
	for _, l := range byQuery {
		l.perFile, l.mean = median(l.perRun), median(l.meanMS)
		for i, v := range l.perRun {
			total[i] += v
		}
		lines = append(lines, l)
	}
	slices.SortFunc(lines, func(a, b *line) int {
		if a.perFile != b.perFile {
			if a.perFile > b.perFile {
				return -1
			}
			return 1
		}
		return strings.Compare(a.query, b.query)
	})
	w("\n**PostgreSQL statements per uploaded file**, DocuVault at %s (pg_stat_statements, reset before each of its %d runs and read after the run's event drain; the median over those runs, per statement, of its calls per uploaded file and of its mean execution time). Only the services' statements: the harness connects as a role of its own (`%s`), which the read leaves out, so its polls and statistics reads are not here. Utility statements (`BEGIN`, `SET LOCAL`, …) count as statements. Long statements show their start and their end. %d distinct statements ran, %.1f calls per file in all (median); the %d most called:\n\n",
		human(statementsAt), len(runs), harnessRole, len(lines), median(total), min(stmtRows, len(lines)))
	w("| calls per file | mean ms | statement |\n|---|---|---|\n")
	for _, l := range lines[:min(stmtRows, len(lines))] {
		w("| %.2f | %.3f | `%s` |\n", l.perFile, l.mean, oneLine(l.query, 200))
	}
}

// settles matches the statement that applies confirms, `SELECT * FROM
// settle_documents($1, $2)`: one call per batch of settlements, one row
// per settlement. The statements inside the function
// (pg_stat_statements.track = all) do not name it.
func settles(st stmtStat) bool { return strings.Contains(stmtKey(st.query), "settle_documents(") }

// sent matches the statements a service sent, not those run inside a
// function or a trigger.
func sent(st stmtStat) bool { return st.toplevel }

// statementsPerFile returns, for the statements of run x that match, their
// calls and their rows per uploaded file (0, 0 when the run did not read
// the statements).
func (x tpRun) statementsPerFile(match func(stmtStat) bool) (calls, rows float64) {
	for _, st := range x.stmts {
		if match(st) {
			calls += st.calls
			rows += st.rows
		}
	}
	n := float64(max(1, x.st.ops))
	return calls / n, rows / n
}

// literals matches what pg_stat_statements may or may not have replaced
// by a parameter: it keeps a statement's text normalized when it was
// planned, but as sent when its entry was made again at execution (after a
// reset, a prepared statement is not parsed again). Both are one statement.
var literals = regexp.MustCompile(`\$[0-9]+|\b[0-9]+\b|\btrue\b|\bfalse\b`)

// stmtKey is q with its literals and parameters alike and its white space
// made one space: one key per statement, however pg_stat_statements wrote it.
func stmtKey(q string) string {
	return literals.ReplaceAllString(strings.Join(strings.Fields(q), " "), "?")
}

// oneLine is q on one line, its runs of white space made one space,
// without the characters that would break a Markdown table cell, and at
// most n characters: a longer statement keeps its start and its end (the
// statements of one use case often share a long column list, and differ
// in their last clauses).
func oneLine(q string, n int) string {
	q = strings.Join(strings.Fields(q), " ")
	q = strings.NewReplacer("|", "¦", "`", "'").Replace(q)
	if r := []rune(q); len(r) > n {
		q = string(r[:n/2]) + " … " + string(r[len(r)-n/2:])
	}
	return q
}
