DROP TABLE slo_snapshots;
