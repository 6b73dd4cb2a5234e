-- Migration: 001
-- Description: Drop messenger schema

BEGIN;
DROP SCHEMA IF EXISTS messenger;
COMMIT;
