"""Official files -> the validated LA x year panel."""
