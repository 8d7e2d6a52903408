// The /recover page: rebuild the owner key from shares and set a new password (to be written).
