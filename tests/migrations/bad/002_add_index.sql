-- Migration: 002
-- Description: Add an index
-- Date: 25.11.2025
-- Author:
-- Rollback: See 002_rollback.sql
BEGIN;
CREATE INDEX agents_created ON agents (created_at);
COMMIT;
CREATE INDEX agents_name ON agents (name);
