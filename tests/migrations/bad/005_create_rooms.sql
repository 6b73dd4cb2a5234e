-- Migration: 005
-- Description: Create rooms
-- Date: 2025-11-22
-- Author: DAARION Team
-- Rollback: See 005_rollback.sql
BEGIN;
CREATE TABLE rooms (id text PRIMARY KEY);
COMMIT;
