-- Every SECURITY DEFINER function of ips pins its search_path to pg_catalog, pg_temp
-- (engineering.md: a definer function without its own search_path runs the
-- caller's operators and functions with the owner's rights).
BEGIN;
SELECT plan(2);

SELECT ok((SELECT count(*) FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'ips'::regnamespace AND p.prosecdef) >= 10,
          'the extension has definer functions to check');

SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p
                 WHERE p.pronamespace = 'ips'::regnamespace AND p.prosecdef
                   AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
                 ORDER BY 1),
          '{}'::text[],
          'every SECURITY DEFINER function sets search_path = pg_catalog, pg_temp');

SELECT * FROM finish();
ROLLBACK;
