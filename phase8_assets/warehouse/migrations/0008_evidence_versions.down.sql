DROP TABLE evidence_versions;
