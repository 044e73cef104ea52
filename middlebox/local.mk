# middlebox
