-- Migration: 002
-- Description: Create agents tables
-- Date: 2025-11-21
-- Author: DAARION Team
-- Rollback: See 002_rollback.sql

BEGIN;

CREATE TABLE agents (
    id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- a function body has its own BEGIN ... END, which is not a transaction statement
CREATE FUNCTION touch() RETURNS trigger AS $$
BEGIN
    NEW.created_at = now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

COMMIT;
