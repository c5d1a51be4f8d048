//! The README's copy of the option table is the option table.

#[test]
fn readme_option_table_is_the_option_table() {
    let readme = include_str!("../README.md");
    let table = circuit_spec::markdown_table();
    let header = table.lines().next().expect("a header");
    let start = readme
        .find(header)
        .expect("the README has the option table under its header");
    let in_readme: Vec<&str> = readme[start..]
        .lines()
        .take_while(|line| line.starts_with('|'))
        .collect();
    let in_code: Vec<&str> = table.lines().collect();
    assert_eq!(
        in_readme, in_code,
        "the README's option table differs from `circuit_spec::OPTIONS`; paste `circuit_spec::markdown_table()` over it"
    );
}
