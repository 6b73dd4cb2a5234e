-- Migration: 007
-- Description: Create agents tables
-- Date: 2025-13-01
-- Rollback: See 007_rollback.sql

CREATE TABLE agents (id text PRIMARY KEY);
COMMIT;
