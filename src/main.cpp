int main() { return 1; }  // replaced by the daemon's command line
