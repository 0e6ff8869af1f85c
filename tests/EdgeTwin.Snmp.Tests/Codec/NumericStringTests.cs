using EdgeTwin.Tests.Shared;
namespace EdgeTwin.Snmp.Tests.Codec;

/// <summary>OctetString values that carry a number (some agents send readings as text) and those that do not.</summary>
public sealed class NumericStringTests
{
    [Theory]
    [InlineData(" 42.5 ", 42.5)]
    [InlineData("-7", -7)]
    [InlineData("1e3\n", 1000)]
    public void A_numeric_string_reads_as_its_number(string text, double expected)
    {
        Assert.True(SnmpValue.OctetString(text).TryGetNumber(out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("fw 4.2.1")]
    [InlineData("")]
    [InlineData("NaN")]
    [InlineData("4\u00e9")]
    public void Text_is_not_a_number(string text) => Assert.False(SnmpValue.OctetString(text).TryGetNumber(out _));

    [Fact]
    public void Regression_a_text_value_read_as_a_gauge_allocated_on_every_poll()
    {
        var firmware = SnmpValue.OctetString("fw 4.2.1");
        var number = SnmpValue.OctetString("230.1");
        firmware.TryGetNumber(out _);
        number.TryGetNumber(out _);
        Allocations.AssertSomeRoundAllocatesNothing(
            () =>
            {
                for (var i = 0; i < 1000; i++)
                {
                    firmware.TryGetNumber(out _);
                    number.TryGetNumber(out _);
                }
            },
            "1,000 TryGetNumber of a number and a non-number");
    }
}
