-- make bench: backend CPU per one-row INSERT transaction (see bench/run.sh).
-- One backend inserts @ROWS@ contacts into @TABLE@ (bench/run.sh fills them in), one statement and one COMMIT each,
-- the targets spread over bench_target; it reads its own user + system CPU time
-- from /proc/<pid>/stat (clock ticks) before and after, and prints µs per row.
-- Unlike pgbench's rates on a shared 2-core machine, this counts only the CPU the
-- server spends on the statement and its commit (no client, no scheduling).
DO $$
DECLARE
    c0 bigint; c1 bigint; st text[]; r record;
    hz constant numeric := @HZ@;   -- clock ticks a second (getconf CLK_TCK)
    n constant int := @ROWS@;
    nt constant int := (SELECT count(*) FROM bench_target);
BEGIN
    st := regexp_split_to_array(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ');
    c0 := st[14]::bigint + st[15]::bigint;
    FOR i IN 1 .. n LOOP
        SELECT * INTO r FROM bench_target WHERE bench_target.n = 1 + (i * 7919) % nt;
        INSERT INTO @TABLE@ (episode_id, client_id, staff_id, at, kind, mode, setting, minutes)
        VALUES (r.episode_id, r.client_id, r.staff_id, r.at, 'client', 'in_person', 'community', 30);
        COMMIT;
    END LOOP;
    st := regexp_split_to_array(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ' ');
    c1 := st[14]::bigint + st[15]::bigint;
    RAISE NOTICE 'cpu_us_per_row %', round((c1 - c0) * 1e6 / hz / n, 1);
END $$;
