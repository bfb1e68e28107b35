// Package cluster talks to a SingleStore cluster: admin statements on the
// master aggregator over the MySQL protocol (Client), node control through
// sdb-admin on the toolbox host over SSH or locally (SDBAdmin with an
// SSHRunner or LocalRunner), and the preflight checks of the runbook
// (Preflighter).
//
// Result sets are read by column name, case-insensitively and ignoring
// spaces and underscores, because SHOW LEAVES, SHOW AGGREGATORS and SHOW
// CLUSTER STATUS name and order their columns differently across versions.
// Statements are sent as plain text without arguments: identifiers go
// through QuoteIdent, never through a prepared statement, because
// SingleStore-only statements cannot be prepared by every server.
package cluster
