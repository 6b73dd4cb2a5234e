-- Migration: 001
BEGIN;
DROP SCHEMA messenger;
COMMIT;
