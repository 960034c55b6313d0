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
-- ips.episode: 1.0's check "closed iff closed_on and close_reason" overlapped 1.1's
-- episode_open_iff_no_closed_on; what is left of it is "a closed episode has a reason".
-- The unnamed checks get names, as in the 1.2 install script.
ALTER TABLE ips.episode DROP CONSTRAINT episode_check;
ALTER TABLE ips.episode RENAME CONSTRAINT episode_check1 TO episode_on_hold_iff_held_state;
ALTER TABLE ips.episode ADD CONSTRAINT episode_closed_has_reason CHECK (state <> 'closed' OR close_reason IS NOT NULL);

-- ===== what people see: settings, labels, the review sheet (issue 17)

-- ===== grants, revokes and policies for new and changed objects
SELECT ips.apply_security();
