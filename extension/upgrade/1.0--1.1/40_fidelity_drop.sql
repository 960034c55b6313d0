-- 1.0 -> 1.1: fidelity item V12 reads the rules engine (ips.expectations); the 1.0 helper that
-- reimplemented the follow-along windows is no longer read by anything.  (The new
-- ips.fidelity_computed comes from the marked region of extension/sql/40_fidelity.sql.)
DROP FUNCTION ips.follow_along_from_records(bigint, date, date);
