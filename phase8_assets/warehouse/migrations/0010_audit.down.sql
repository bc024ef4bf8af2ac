DROP TABLE audit_anchors;
DROP TABLE audit_events;
