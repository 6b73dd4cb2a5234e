-- Migration: 003
BEGIN;
  COMMIT;
DROP INDEX agents_created;
COMMIT;
