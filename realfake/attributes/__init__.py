"""Stage attributes: the gender/age/race model and the face measures (pose, skin tone)."""
