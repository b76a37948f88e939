"""The desk: the web console for the department, township committees and the supervision
group (issue 16)."""
