-- ips 1.1 -> 1.2, written by hand (ALTER EXTENSION ips UPDATE).  Every change of
-- the 1.2 install script (extension/sql/*.sql) that a 1.1 database needs is made
-- here too; tests/t/020_upgrade.pl proves the updated catalog equals a fresh one.
-- One section per concern, in the order of the install script's parts.
\echo Use "ALTER EXTENSION ips UPDATE" to load this file. \quit

-- ===== trust: every guarantee enforced at the table (issue 13)

-- ===== bounded input and settings (issue 13)

-- ===== analysts: suppression and team fidelity (issue 13)

-- ===== the ledger: change log and access log (issue 14)

-- ===== reads of a client's record: logged even when the reader rolls back (issue 14)

-- ===== staff history, jobs, corrections (issue 16)

-- ===== release clean-up: overlapping checks and the like (issue 15)

-- ===== what people see: settings, labels, the review sheet (issue 17)

-- ===== grants, revokes and policies for new and changed objects
SELECT ips.apply_security();
