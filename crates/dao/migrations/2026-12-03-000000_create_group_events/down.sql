DROP TABLE group_events;
