DROP TABLE otel_points;
DROP TABLE otel_files;
