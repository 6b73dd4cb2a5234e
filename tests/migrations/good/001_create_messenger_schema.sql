-- Migration: 001
-- Description: Create messenger schema
-- Date: 2025-11-20
-- Author: DAARION Team
-- Rollback: See 001_rollback.sql

BEGIN;

CREATE SCHEMA IF NOT EXISTS messenger;

COMMIT;
