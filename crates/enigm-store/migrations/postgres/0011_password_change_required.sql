-- A password someone else chose or saw must be replaced by its owner at first login (issue 19):
-- the bootstrap owner's (written to bootstrap-admin.txt) and every account another
-- administrator created (`enigm admin users create`). While the flag is set, a session may only
-- change its password, read its account and log out. Accounts that existed before this
-- migration keep working: their passwords were in use already.

ALTER TABLE admins ADD COLUMN password_change_required BIGINT NOT NULL DEFAULT 0;
