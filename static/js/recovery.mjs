// The /account/recovery page: split the owner key into recovery shares (to be written).
