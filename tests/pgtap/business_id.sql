-- ips.business_id: the Finnish business ID (Y-tunnus) type.
-- Check digits worked out by hand: weights 7,9,10,5,8,4,2; sum mod 11 = r;
-- r = 0 -> 0, r = 1 -> no valid ID, else 11 - r.
--   0112038: 0*7+1*9+1*10+2*5+0*8+3*4+8*2 = 57, 57 mod 11 = 2  -> 9
--   1572860: 7+45+70+10+64+24+0 = 220, mod 11 = 0               -> 0
--   0737546: 0+63+30+35+40+16+12 = 196, mod 11 = 9              -> 2
--   1234567: 7+18+30+20+40+24+14 = 153, mod 11 = 10             -> 1
--   0000006: 6*2 = 12, mod 11 = 1                               -> invalid
--   9999999: 9*45 = 405, mod 11 = 9                             -> 2
BEGIN;
SELECT plan(31);
-- the comparison operators live in schema ips, beside the type
SET LOCAL search_path = public, ips;

SELECT is('0112038-9'::ips.business_id::text, '0112038-9', 'valid ID round-trips');
SELECT is('1572860-0'::ips.business_id::text, '1572860-0', 'remainder 0 gives check digit 0');
SELECT is('0737546-2'::ips.business_id::text, '0737546-2', 'check digit 11 - 9 = 2');
SELECT is('1234567-1'::ips.business_id::text, '1234567-1', 'check digit 11 - 10 = 1');
SELECT is('9999999-2'::ips.business_id::text, '9999999-2', 'largest body');
SELECT is('0000000-0'::ips.business_id::text, '0000000-0', 'smallest body');
SELECT is('112038-9'::ips.business_id::text, '0112038-9', 'old six-digit form gets its leading zero');
SELECT is(' 0112038-9 '::ips.business_id::text, '0112038-9', 'surrounding blanks are ignored');

SELECT throws_ok($$SELECT '0112038-8'::ips.business_id$$, '22P02',
                 'invalid Finnish business ID: "0112038-8"', 'wrong check digit is refused');
SELECT throws_ok($$SELECT '0000006-0'::ips.business_id$$, '22P02',
                 'invalid Finnish business ID: "0000006-0"', 'remainder 1: no check digit is valid');
SELECT throws_ok($$SELECT '0000006-1'::ips.business_id$$, '22P02', NULL, 'remainder 1 refused whatever digit');
SELECT throws_ok($$SELECT '01120389'::ips.business_id$$, '22P02', NULL, 'missing hyphen');
SELECT throws_ok($$SELECT '0112038-'::ips.business_id$$, '22P02', NULL, 'missing check digit');
SELECT throws_ok($$SELECT '12345678-9'::ips.business_id$$, '22P02', NULL, 'eight digits');
SELECT throws_ok($$SELECT '12345-6'::ips.business_id$$, '22P02', NULL, 'five digits');
SELECT throws_ok($$SELECT 'FI01120389'::ips.business_id$$, '22P02', NULL, 'VAT number form is not a business ID');
SELECT throws_ok($$SELECT '0112038-9x'::ips.business_id$$, '22P02', NULL, 'trailing garbage');
SELECT throws_ok($$SELECT ''::ips.business_id$$, '22P02', NULL, 'empty string');

-- ordering and equality
SELECT ok('0112038-9'::ips.business_id < '1572860-0'::ips.business_id, 'btree order is numeric order');
SELECT ok('0112038-9'::ips.business_id = '112038-9'::ips.business_id, 'six- and seven-digit forms are equal');
SELECT ok('0737546-2'::ips.business_id <> '1234567-1'::ips.business_id, 'different IDs differ');
SELECT is((SELECT array_agg(x ORDER BY x)::text[] FROM unnest(ARRAY['9999999-2','0000000-0','1234567-1']::ips.business_id[]) x),
          ARRAY['0000000-0','1234567-1','9999999-2'], 'ORDER BY sorts by the digits');
SELECT is((SELECT count(DISTINCT x) FROM unnest(ARRAY['0112038-9','112038-9','1572860-0']::ips.business_id[]) x),
          2::bigint, 'DISTINCT uses the type''s equality (hash or sort)');

-- binary send/receive: the body as int4
SELECT is(ips.business_id_send('0112038-9'), '\x0001b5a6'::bytea, 'send gives the body 112038 as int4');
DO $$
BEGIN
    EXECUTE format('COPY (SELECT b FROM unnest(ARRAY[''0112038-9'',''9999999-2'']::ips.business_id[]) b) TO %L (FORMAT binary)',
                   '/tmp/ips_bid_' || pg_backend_pid() || '.bin');
    CREATE TEMP TABLE bin_in (b ips.business_id);
    EXECUTE format('COPY bin_in FROM %L (FORMAT binary)', '/tmp/ips_bid_' || pg_backend_pid() || '.bin');
END $$;
SELECT is((SELECT string_agg(b::text, ',' ORDER BY b) FROM bin_in), '0112038-9,9999999-2', 'binary COPY out and in (send/receive) round-trips');
SELECT ok(ips.business_id_is_valid('0112038-9') AND NOT ips.business_id_is_valid('0112038-8')
          AND NOT ips.business_id_is_valid('abc'), 'business_id_is_valid tells without raising');

-- an index on the type, and the employer table using it
CREATE TEMP TABLE t (b ips.business_id PRIMARY KEY);
INSERT INTO t VALUES ('0112038-9'), ('1572860-0');
SELECT throws_ok($$INSERT INTO t VALUES ('112038-9')$$, '23505', NULL, 'unique index sees the equal short form');
SELECT is(ips.add_employer('Prisma Vaasa', '0112038-9', 'retail') > 0, true, 'add_employer takes a valid ID');
SELECT throws_ok($$SELECT ips.add_employer('Bad Oy', '0112038-8')$$, '22P02', NULL, 'add_employer refuses a wrong check digit');
SELECT throws_ok($$SELECT ips.add_employer('Twin Oy', '0112038-9')$$, '23505',
                 'an employer with business ID 0112038-9 exists already', 'same ID twice is refused');
SELECT is((SELECT count(*) FROM ips.employer), 1::bigint, 'refused employers wrote nothing');

SELECT * FROM finish();
ROLLBACK;
