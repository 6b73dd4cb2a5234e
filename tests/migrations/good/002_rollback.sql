-- Migration: 002
-- Description: Drop agents tables
BEGIN;
DROP FUNCTION IF EXISTS touch();
DROP TABLE IF EXISTS agents;
COMMIT;
