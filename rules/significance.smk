# significance: filled in by its rules
