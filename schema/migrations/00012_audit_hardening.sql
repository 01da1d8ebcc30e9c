-- +goose Up

-- payload_jsonb is an event log payload as JSON, or NULL when its bytes
-- are not UTF-8 JSON (a payload changed out of band): the audit then
-- reports that row as changed, with its seq, instead of failing with an
-- encoding error (issue 14).
-- +goose StatementBegin
CREATE FUNCTION payload_jsonb(b bytea) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN convert_from(b, 'UTF8')::jsonb;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION payload_jsonb(bytea);
