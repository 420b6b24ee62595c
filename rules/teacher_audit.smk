# teacher_audit: filled in by its rules
