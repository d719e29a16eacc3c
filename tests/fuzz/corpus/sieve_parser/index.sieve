require ["index", "date", "relational"];
if header :contains :index 2 :last "Received" "hop" { discard; }
if address :index 1 :domain "To" "example.com" { keep; }
if date :value "ge" :index 1 "received" "year" "2000" { stop; }
