DROP TABLE drill_reminders;
DROP TABLE drill_activities;
DROP TABLE drill_runs;
