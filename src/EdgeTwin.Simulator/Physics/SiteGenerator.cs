using System.Globalization;

namespace EdgeTwin.Simulator.Physics;

/// <summary>What to generate; everything not given is drawn from the seed.</summary>
public sealed record SiteGenerationOptions
{
    public int Racks { get; init; } = 10;

    public int CoolingUnits { get; init; } = 2;

    public int Machines { get; init; }

    /// <summary>Stations of a simulated packaging line (0 = no line); the machines drive its stations S2, S3, ….</summary>
    public int LineStations { get; init; }

    public int Seed { get; init; } = 1;

    public int RacksPerRow { get; init; } = 10;

    /// <summary>Range of rack design power (kW at full load) the racks are drawn from.</summary>
    public double MinRackKw { get; init; } = 4;

    public double MaxRackKw { get; init; } = 10;

    public int ServersPerRack { get; init; } = 10;

    /// <summary>Total cooling capacity as a multiple of the total design IT load.</summary>
    public double CoolingMargin { get; init; } = 1.3;

    public DateTimeOffset? Start { get; init; }

    /// <summary>
    /// Rooms to split the racks and cooling units over (contiguous blocks, each room its own cooling), each with its
    /// lighting load and an infrastructure sub-meter (<see cref="RoomSpec.InfrastructureMeter"/>); at most as many as there
    /// are racks and cooling units. Null (the default): one room without a sub-meter, the site as it always was.
    /// </summary>
    public int? Rooms { get; init; }
}

/// <summary>
/// Draws a site from options and a seed: rows of racks, cooling units spread along them with a coupling
/// that falls off with distance (neighbouring units share racks), two PDUs per rack on a 2N UPS pair,
/// and machines on one production line.
/// </summary>
public static class SiteGenerator
{
    public static SiteSpec Generate(SiteGenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.Racks);
        ArgumentOutOfRangeException.ThrowIfNegative(options.CoolingUnits);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Machines);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.RacksPerRow);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.ServersPerRack);

        var roomCount = options.Rooms ?? 1;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(roomCount, nameof(options.Rooms));
        if (roomCount > options.Racks || (options.Rooms is not null && roomCount > options.CoolingUnits))
        {
            throw new ArgumentException($"{roomCount} rooms need at least as many racks ({options.Racks}) and cooling units ({options.CoolingUnits}): every room has racks and its own cooling");
        }

        // Racks and units are split over the rooms in contiguous blocks; with one room (the default) every loop below
        // draws from the seed in the order it always has, so a seed gives the site it always gave.
        var rng = new SimRandom(options.Seed);
        var racks = new List<RackSpec>(options.Racks);
        var roomRacks = new List<RackSpec>[roomCount];
        var rowBase = 0;
        for (var room = 0; room < roomCount; room++)
        {
            var first = room * options.Racks / roomCount;
            var count = ((room + 1) * options.Racks / roomCount) - first;
            roomRacks[room] = new List<RackSpec>(count);
            for (var i = 0; i < count; i++)
            {
                var row = RowName(rowBase + (i / options.RacksPerRow));
                var position = (i % options.RacksPerRow) + 1;
                var rowLength = Math.Min(options.RacksPerRow, count - (i / options.RacksPerRow * options.RacksPerRow));
                var rowEnd = position == 1 || position == rowLength;
                var designKw = Math.Round(rng.Uniform(options.MinRackKw, options.MaxRackKw), 1);
                var rack = new RackSpec(
                    Id: row + position.ToString("00", CultureInfo.InvariantCulture),
                    Row: row,
                    Position: position,
                    DesignKw: designKw,
                    Servers: options.ServersPerRack,
                    BaseRecirculation: rng.Uniform(0.02, 0.08) + (rowEnd ? 0.06 : 0),
                    TopRecirculation: rng.Uniform(0.05, 0.2),
                    PowerBudgetKw: Math.Ceiling(designKw * 1.2))
                {
                    BaseUtilisation = rng.Uniform(0.45, 0.65),
                    DailyAmplitude = rng.Uniform(0.1, 0.25),
                    Room = options.Rooms is null ? null : RoomId(room),
                };
                racks.Add(rack);
                roomRacks[room].Add(rack);
            }

            rowBase += (count + options.RacksPerRow - 1) / options.RacksPerRow;
        }

        var units = new List<CoolingUnitSpec>(options.CoolingUnits);
        for (var room = 0; room < roomCount; room++)
        {
            var inRoom = roomRacks[room];
            var roomKw = inRoom.Sum(r => r.DesignKw);
            var firstUnit = room * options.CoolingUnits / roomCount;
            var unitCount = ((room + 1) * options.CoolingUnits / roomCount) - firstUnit;
            for (var j = 0; j < unitCount; j++)
            {
                // Units stand evenly along their room's racks; each one's air reaches racks with a weight falling off
                // exponentially with distance, so neighbouring units share the racks between them.
                var position = (j + 0.5) * inRoom.Count / unitCount;
                var reach = Math.Max(1.5, 0.6 * inRoom.Count / unitCount);
                var weights = new Dictionary<string, double>(StringComparer.Ordinal);
                for (var i = 0; i < inRoom.Count; i++)
                {
                    weights[inRoom[i].Id] = Math.Exp(-Math.Abs(i + 0.5 - position) / reach);
                }

                var bypass = rng.Uniform(0.05, 0.15);
                var sum = weights.Values.Sum();
                var coupling = weights
                    .Select(w => (w.Key, Value: Math.Round((1 - bypass) * w.Value / sum, 4)))
                    .Where(w => w.Value >= 0.005)
                    .ToDictionary(w => w.Key, w => w.Value, StringComparer.Ordinal);
                var capacity = Math.Ceiling(roomKw * options.CoolingMargin / unitCount / 5) * 5;
                var servesThreshold = coupling.Values.Max() * 0.3;
                units.Add(new CoolingUnitSpec($"crac{firstUnit + j + 1}", capacity, Math.Round(rng.Uniform(17, 20), 1), coupling)
                {
                    DesignDeltaTK = rng.Uniform(10, 12),
                    Serves = [.. coupling.Where(c => c.Value >= servesThreshold).Select(c => c.Key)],
                    Room = options.Rooms is null ? null : RoomId(room),
                });
            }
        }

        var totalKw = racks.Sum(r => r.DesignKw);
        var pdus = new List<PduSpec>(racks.Count * 2);
        foreach (var rack in racks)
        {
            // A rack's breakers are sized for its design load on one feed (2N), with the 80 % derating.
            var phases = rack.DesignKw > 7 ? 3 : 1;
            var breaker = phases == 3 ? 16 : 32;
            pdus.Add(new PduSpec($"pdu-{rack.Id.ToLowerInvariant()}-a", rack.Id, "a", "ups1", breaker, phases));
            pdus.Add(new PduSpec($"pdu-{rack.Id.ToLowerInvariant()}-b", rack.Id, "b", "ups2", breaker, phases));
        }

        var upsKw = Math.Ceiling(totalKw * 1.25 / 10) * 10;
        var upses = new List<UpsSpec>
        {
            new("ups1", upsKw, Math.Round(upsKw * rng.Uniform(8, 15) / 60, 1)),
            new("ups2", upsKw, Math.Round(upsKw * rng.Uniform(8, 15) / 60, 1)),
        };

        var machines = new List<MachineSpec>(options.Machines);
        for (var m = 0; m < options.Machines; m++)
        {
            machines.Add(new MachineSpec(
                Id: $"m{m + 1}",
                Line: "line1",
                RatedKw: new[] { 7.5, 11, 15, 22, 30 }[rng.Next(0, 5)],
                LoadFactor: rng.Uniform(0.55, 0.85),
                InitialWear: rng.Uniform(0, 0.4),
                HoursToFailure: rng.Uniform(24 * 5, 24 * 30)));
        }

        // Each room's air volume and mass scale with its racks; sub-metered rooms (Rooms given) also carry their lighting
        // and other small loads, which the default one-room site never had.
        var rooms = new List<RoomSpec>(roomCount);
        for (var room = 0; room < roomCount; room++)
        {
            var count = roomRacks[room].Count;
            rooms.Add(new RoomSpec(
                RoomId(room),
                VolumeM3: Math.Round(count * rng.Uniform(20, 40)),
                MassFactor: rng.Uniform(3, 6),
                EnvelopeUaKwPerK: Math.Round(0.02 * count, 2))
            {
                LightingKw = options.Rooms is null ? 0 : Math.Round(0.2 + (0.1 * count), 2),
                InfrastructureMeter = options.Rooms is not null,
            });
        }

        return new SiteSpec
        {
            Seed = options.Seed,
            Start = options.Start ?? SiteSpec.DefaultStart,
            Room = rooms[0],
            Rooms = options.Rooms is null ? [] : rooms,
            Racks = racks,
            CoolingUnits = units,
            Pdus = pdus,
            Upses = upses,
            Machines = machines,
            Line = options.LineStations > 0 ? Line.SimLineSpec.Packaging(options.LineStations, options.Seed, machines: [.. machines.Select(m => m.Id)]) : null,
        };
    }

    /// <summary>Id of the generated site's room <paramref name="index"/> (0-based): room1, room2, ….</summary>
    public static string RoomId(int index) => "room" + (index + 1).ToString(CultureInfo.InvariantCulture);

    private static string RowName(int index)
    {
        // A..Z, then AA, AB, … for very large sites.
        var name = string.Empty;
        index++;
        while (index > 0)
        {
            index--;
            name = (char)('A' + (index % 26)) + name;
            index /= 26;
        }

        return name;
    }
}
