-- APPEND and delivery without keywords (nearly all of them) skip the
-- keyword normalisation. petrel__kw_norm (002) is an SQL function with a
-- FROM, so it cannot be inlined and each call from PL/pgSQL parses and
-- plans it again: in imap-append that was 8.7% of PostgreSQL's samples
-- (perf: fmgr_sql, and pg_plan_query 2.9% under it) for an empty array.
-- Same signature and results as 002.
CREATE OR REPLACE FUNCTION petrel__check_kw(p_kw text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    IF coalesce(cardinality(p_kw), 0) = 0 THEN
        RETURN '{}';
    END IF;
    FOREACH k IN ARRAY p_kw LOOP
        -- A system flag here would be a frontend bug: those travel as bits.
        IF k IS NULL OR k = '' OR k ~ '[\\(){%*"\]\s[:cntrl:]]' OR k !~ '^[\x21-\x7e]+$' THEN
            RAISE EXCEPTION 'invalid keyword "%"', k USING ERRCODE = '22023';
        END IF;
    END LOOP;
    RETURN petrel__kw_norm(p_kw);
END $$;
