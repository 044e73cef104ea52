# publisher
