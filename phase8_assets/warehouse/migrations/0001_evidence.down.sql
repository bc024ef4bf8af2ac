DROP TABLE evidence_rejections;
DROP TABLE evidence_files;
